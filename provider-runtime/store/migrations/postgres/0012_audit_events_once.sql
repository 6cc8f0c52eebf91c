-- The business services' state changes in the audit log (docs/adr/0041): one record per
-- business event, whose id is kept as the record's request id. The outbox relay may publish an
-- event again (published, then stopped before marking it sent); this index makes the second
-- record of the same event impossible, whichever replica relays it.
CREATE UNIQUE INDEX audit_log_service_events
    ON audit_log (tenant_id, request_id)
    WHERE entity LIKE 'service/%';
