"""A small invoicing platform that embeds Hookline: its own tenants, users, login and models,
with billing, payments and communications services that publish webhooks in their own
transactions. See README.md beside this file."""
