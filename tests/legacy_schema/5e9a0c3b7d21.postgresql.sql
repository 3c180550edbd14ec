-- Hookline's schema at revision 5e9a0c3b7d21 as its migrations made it before issue 12 (unprefixed
-- table names, history in alembic_version): PostgreSQL, from pg_dump --schema-only, unqualified.

CREATE TABLE alembic_version (
    version_num character varying(32) NOT NULL
);

CREATE TABLE api_keys (
    id character varying(32) NOT NULL,
    tenant_id character varying(32) NOT NULL,
    name character varying(200) NOT NULL,
    prefix character varying(32) NOT NULL,
    key_hash character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone
);

CREATE TABLE attempts (
    id character varying(32) NOT NULL,
    tenant_id character varying(32) NOT NULL,
    delivery_id character varying(32) NOT NULL,
    number integer NOT NULL,
    trigger character varying(16) NOT NULL,
    started_at timestamp with time zone NOT NULL,
    duration_ms integer NOT NULL,
    request_headers json NOT NULL,
    response_status integer,
    response_headers json,
    response_body text,
    response_truncated boolean NOT NULL,
    error text
);

CREATE TABLE deliveries (
    id character varying(32) NOT NULL,
    tenant_id character varying(32) NOT NULL,
    event_id character varying(32) NOT NULL,
    subscription_id character varying(32) NOT NULL,
    event_type character varying(200) NOT NULL,
    status character varying(16) NOT NULL,
    priority boolean NOT NULL,
    is_test boolean NOT NULL,
    attempt_count integer NOT NULL,
    next_trigger character varying(16) NOT NULL,
    next_attempt_at timestamp with time zone,
    lease_expires_at timestamp with time zone,
    last_response_status integer,
    last_attempt_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE event_types (
    id character varying(32) NOT NULL,
    tenant_id character varying(32),
    name character varying(200) NOT NULL,
    "group" character varying(100) NOT NULL,
    description text NOT NULL,
    example json NOT NULL,
    schema json,
    archived boolean NOT NULL,
    created_at timestamp with time zone NOT NULL
);

CREATE TABLE events (
    id character varying(32) NOT NULL,
    tenant_id character varying(32) NOT NULL,
    type character varying(200) NOT NULL,
    data json NOT NULL,
    idempotency_key character varying(255),
    fingerprint character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL
);

CREATE TABLE subscriptions (
    id character varying(32) NOT NULL,
    tenant_id character varying(32) NOT NULL,
    url character varying(2048) NOT NULL,
    description character varying(500) NOT NULL,
    events json NOT NULL,
    headers json NOT NULL,
    rate_limit integer,
    is_active boolean NOT NULL,
    disabled_reason character varying(500),
    disabled_at timestamp with time zone,
    secrets_encrypted text NOT NULL,
    last_success_at timestamp with time zone,
    failing_since timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    circuit_opened_at timestamp with time zone,
    paused_until timestamp with time zone,
    pause_seconds integer DEFAULT 0 NOT NULL,
    probe_until timestamp with time zone,
    last_error character varying(500),
    data_filter json,
    signature_scheme character varying(16) DEFAULT 'hmac'::character varying NOT NULL
);

CREATE TABLE tenants (
    id character varying(32) NOT NULL,
    name character varying(200) NOT NULL,
    created_at timestamp with time zone NOT NULL
);

CREATE TABLE users (
    id character varying(32) NOT NULL,
    tenant_id character varying(32) NOT NULL,
    email character varying(320) NOT NULL,
    password_hash character varying(256) NOT NULL,
    created_at timestamp with time zone NOT NULL
);

ALTER TABLE ONLY alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash);

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY attempts
    ADD CONSTRAINT attempts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY deliveries
    ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY event_types
    ADD CONSTRAINT event_types_pkey PRIMARY KEY (id);

ALTER TABLE ONLY events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY subscriptions
    ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);

ALTER TABLE ONLY event_types
    ADD CONSTRAINT uq_event_types_tenant_name UNIQUE (tenant_id, name);

ALTER TABLE ONLY events
    ADD CONSTRAINT uq_events_tenant_idempotency UNIQUE (tenant_id, idempotency_key);

ALTER TABLE ONLY users
    ADD CONSTRAINT users_email_key UNIQUE (email);

ALTER TABLE ONLY users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

CREATE INDEX ix_api_keys_tenant_created ON api_keys USING btree (tenant_id, created_at);

CREATE INDEX ix_attempts_delivery_number ON attempts USING btree (delivery_id, number);

CREATE INDEX ix_attempts_started_at ON attempts USING btree (started_at);

CREATE INDEX ix_attempts_tenant_started ON attempts USING btree (tenant_id, started_at);

CREATE INDEX ix_deliveries_created_at ON deliveries USING btree (created_at);

CREATE INDEX ix_deliveries_event ON deliveries USING btree (event_id);

CREATE INDEX ix_deliveries_pending_due ON deliveries USING btree (status, priority, subscription_id, next_attempt_at) WHERE ((status)::text = 'pending'::text);

CREATE INDEX ix_deliveries_subscription_status ON deliveries USING btree (subscription_id, status);

CREATE INDEX ix_deliveries_tenant_id_id ON deliveries USING btree (tenant_id, id);

CREATE INDEX ix_deliveries_tenant_status_id ON deliveries USING btree (tenant_id, status, id);

CREATE INDEX ix_event_types_name ON event_types USING btree (name);

CREATE INDEX ix_event_types_tenant_id ON event_types USING btree (tenant_id);

CREATE INDEX ix_events_created_at ON events USING btree (created_at);

CREATE INDEX ix_events_tenant_id_id ON events USING btree (tenant_id, id);

CREATE INDEX ix_subscriptions_tenant_id_id ON subscriptions USING btree (tenant_id, id);

CREATE INDEX ix_users_tenant_id ON users USING btree (tenant_id);

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY attempts
    ADD CONSTRAINT attempts_delivery_id_fkey FOREIGN KEY (delivery_id) REFERENCES deliveries(id) ON DELETE CASCADE;

ALTER TABLE ONLY attempts
    ADD CONSTRAINT attempts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY deliveries
    ADD CONSTRAINT deliveries_event_id_fkey FOREIGN KEY (event_id) REFERENCES events(id) ON DELETE CASCADE;

ALTER TABLE ONLY deliveries
    ADD CONSTRAINT deliveries_subscription_id_fkey FOREIGN KEY (subscription_id) REFERENCES subscriptions(id) ON DELETE CASCADE;

ALTER TABLE ONLY deliveries
    ADD CONSTRAINT deliveries_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY event_types
    ADD CONSTRAINT event_types_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY events
    ADD CONSTRAINT events_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY subscriptions
    ADD CONSTRAINT subscriptions_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY users
    ADD CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE;

