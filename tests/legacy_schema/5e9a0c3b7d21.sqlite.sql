-- Hookline's schema at revision 5e9a0c3b7d21 as its migrations made it before issue 12 (unprefixed
-- table names, history in alembic_version): SQLite, from sqlite3 .schema.
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE tenants (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE api_keys (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(32) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	prefix VARCHAR(32) NOT NULL, 
	key_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_used_at DATETIME, 
	revoked_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id) ON DELETE CASCADE, 
	UNIQUE (key_hash)
);
CREATE INDEX ix_api_keys_tenant_created ON api_keys (tenant_id, created_at);
CREATE TABLE event_types (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(32), 
	name VARCHAR(200) NOT NULL, 
	"group" VARCHAR(100) NOT NULL, 
	description TEXT NOT NULL, 
	example JSON NOT NULL, 
	schema JSON, 
	archived BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id) ON DELETE CASCADE, 
	CONSTRAINT uq_event_types_tenant_name UNIQUE (tenant_id, name)
);
CREATE INDEX ix_event_types_name ON event_types (name);
CREATE INDEX ix_event_types_tenant_id ON event_types (tenant_id);
CREATE TABLE events (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(32) NOT NULL, 
	type VARCHAR(200) NOT NULL, 
	data JSON NOT NULL, 
	idempotency_key VARCHAR(255), 
	fingerprint VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id) ON DELETE CASCADE, 
	CONSTRAINT uq_events_tenant_idempotency UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX ix_events_created_at ON events (created_at);
CREATE INDEX ix_events_tenant_id_id ON events (tenant_id, id);
CREATE TABLE subscriptions (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(32) NOT NULL, 
	url VARCHAR(2048) NOT NULL, 
	description VARCHAR(500) NOT NULL, 
	events JSON NOT NULL, 
	headers JSON NOT NULL, 
	rate_limit INTEGER, 
	is_active BOOLEAN NOT NULL, 
	disabled_reason VARCHAR(500), 
	disabled_at DATETIME, 
	secrets_encrypted TEXT NOT NULL, 
	last_success_at DATETIME, 
	failing_since DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, consecutive_failures INTEGER DEFAULT '0' NOT NULL, circuit_opened_at DATETIME, paused_until DATETIME, pause_seconds INTEGER DEFAULT '0' NOT NULL, probe_until DATETIME, last_error VARCHAR(500), data_filter JSON, signature_scheme VARCHAR(16) DEFAULT 'hmac' NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
);
CREATE INDEX ix_subscriptions_tenant_id_id ON subscriptions (tenant_id, id);
CREATE TABLE users (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(32) NOT NULL, 
	email VARCHAR(320) NOT NULL, 
	password_hash VARCHAR(256) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id) ON DELETE CASCADE, 
	UNIQUE (email)
);
CREATE INDEX ix_users_tenant_id ON users (tenant_id);
CREATE TABLE deliveries (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(32) NOT NULL, 
	event_id VARCHAR(32) NOT NULL, 
	subscription_id VARCHAR(32) NOT NULL, 
	event_type VARCHAR(200) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	priority BOOLEAN NOT NULL, 
	is_test BOOLEAN NOT NULL, 
	attempt_count INTEGER NOT NULL, 
	next_trigger VARCHAR(16) NOT NULL, 
	next_attempt_at DATETIME, 
	lease_expires_at DATETIME, 
	last_response_status INTEGER, 
	last_attempt_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(event_id) REFERENCES events (id) ON DELETE CASCADE, 
	FOREIGN KEY(subscription_id) REFERENCES subscriptions (id) ON DELETE CASCADE, 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
);
CREATE INDEX ix_deliveries_created_at ON deliveries (created_at);
CREATE INDEX ix_deliveries_event ON deliveries (event_id);
CREATE INDEX ix_deliveries_subscription_status ON deliveries (subscription_id, status);
CREATE INDEX ix_deliveries_tenant_id_id ON deliveries (tenant_id, id);
CREATE INDEX ix_deliveries_tenant_status_id ON deliveries (tenant_id, status, id);
CREATE TABLE attempts (
	id VARCHAR(32) NOT NULL, 
	tenant_id VARCHAR(32) NOT NULL, 
	delivery_id VARCHAR(32) NOT NULL, 
	number INTEGER NOT NULL, 
	"trigger" VARCHAR(16) NOT NULL, 
	started_at DATETIME NOT NULL, 
	duration_ms INTEGER NOT NULL, 
	request_headers JSON NOT NULL, 
	response_status INTEGER, 
	response_headers JSON, 
	response_body TEXT, 
	response_truncated BOOLEAN NOT NULL, 
	error TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(delivery_id) REFERENCES deliveries (id) ON DELETE CASCADE, 
	FOREIGN KEY(tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
);
CREATE INDEX ix_attempts_delivery_number ON attempts (delivery_id, number);
CREATE INDEX ix_attempts_started_at ON attempts (started_at);
CREATE INDEX ix_attempts_tenant_started ON attempts (tenant_id, started_at);
CREATE INDEX ix_deliveries_pending_due ON deliveries (status, priority, subscription_id, next_attempt_at) WHERE status = 'pending';
