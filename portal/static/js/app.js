// Hookline portal behaviour. Everything here is progressive enhancement: every form and link
// works without it. No inline scripts or handlers exist in the templates, so a strict
// Content-Security-Policy (script-src 'self') can be applied.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // HTMX requests carry the CSRF token in a header (Flask-WTF reads X-CSRFToken).
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  // An outage (503: the database or Redis is unreachable) answers an HTMX request with the
  // "temporarily unavailable" page; htmx swaps no error response by default, so the click
  // would seem to do nothing. Show that page's message in place of the page's content.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status !== 503) return;
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    event.detail.target = document.getElementById("main") || document.body;
    event.detail.selectOverride = "#main > *";
    event.detail.swapOverride = "innerHTML";
  });

  // Copy buttons: <button data-copy="text">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) return;
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Tabs (the verification snippets).
  document.addEventListener("click", function (event) {
    var tab = event.target.closest("[data-tab]");
    if (!tab) return;
    var tabs = tab.closest("[data-tabs]");
    tabs.querySelectorAll("[data-tab]").forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    });
  });

  // Event-type picker: a wildcard covers what it includes, and a search narrows the list.
  function syncPicker(picker) {
    var all = picker.querySelector("[data-picker-all]");
    var everything = all && all.checked;
    picker.querySelectorAll("[data-picker-group]").forEach(function (group) {
      var wildcard = group.querySelector("[data-picker-wildcard]");
      wildcard.disabled = everything;
      var covered = everything || wildcard.checked;
      group.classList.toggle("covered", covered);
      group.querySelectorAll("[data-picker-item] input").forEach(function (input) {
        input.disabled = covered;
      });
    });
  }

  function filterList(root, itemSelector, groupSelector, query, noneSelector) {
    var shown = 0;
    root.querySelectorAll(groupSelector).forEach(function (group) {
      var groupShown = 0;
      group.querySelectorAll(itemSelector).forEach(function (item) {
        var match = !query || item.getAttribute("data-search").indexOf(query) !== -1;
        item.hidden = !match;
        if (match) groupShown += 1;
      });
      group.hidden = groupShown === 0;
      if (query && groupShown && group.tagName === "DETAILS") group.open = true;
      shown += groupShown;
    });
    var none = root.querySelector(noneSelector) || document.querySelector(noneSelector);
    if (none) none.hidden = shown !== 0;
  }

  document.addEventListener("change", function (event) {
    var picker = event.target.closest("[data-picker]");
    if (picker && event.target.type === "checkbox") syncPicker(picker);
  });

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.matches("[data-picker-search]")) {
      var picker = target.closest("[data-picker]");
      filterList(picker, "[data-picker-item]", "[data-picker-group]",
        target.value.trim().toLowerCase(), "[data-picker-none]");
    } else if (target.matches("[data-catalog-search]")) {
      filterList(document, "[data-catalog-item]", "[data-catalog-group]",
        target.value.trim().toLowerCase(), "[data-catalog-none]");
    }
  });

  // The picker's search box must not submit the endpoint form on Enter.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches("[data-picker-search]")) {
      event.preventDefault();
    }
  });

  // Live refresh of the delivery log: re-fetch the results every few seconds while ticked.
  var liveTimer = null;
  document.addEventListener("change", function (event) {
    var toggle = event.target;
    if (!toggle.matches("[data-live-refresh]")) return;
    event.stopPropagation(); // not a filter change
    clearInterval(liveTimer);
    liveTimer = null;
    if (toggle.checked) {
      liveTimer = setInterval(function () {
        var results = document.querySelector(toggle.getAttribute("data-live-refresh"));
        if (results && window.htmx && document.visibilityState === "visible") {
          window.htmx.trigger(results, "refresh");
        }
      }, 5000);
    }
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-picker]").forEach(syncPicker);
  });
})();
