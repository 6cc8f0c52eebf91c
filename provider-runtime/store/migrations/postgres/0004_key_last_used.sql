-- When each key was last seen by the gateway (at most one write per key per key-cache TTL).
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
