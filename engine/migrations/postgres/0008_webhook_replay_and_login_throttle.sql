-- Webhook replay protection: the signatures of accepted webhook deliveries, until their
-- signed timestamp leaves the tolerance window (`expires_at`, UTC ms). A delivery whose
-- signature is already here is a replay and is refused; the primary key makes the check
-- race-free across processes (the insert is `ON CONFLICT DO NOTHING` in the transaction that
-- starts the instance).
CREATE TABLE webhook_signatures (
    webhook    TEXT NOT NULL,
    signature  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (webhook, signature)
);
CREATE INDEX webhook_signatures_expiry ON webhook_signatures (expires_at);

-- Console login throttling: failed sign-ins counted per key (`user:<name>` or
-- `addr:<client address>`) within a window that starts at the first failure; a key over its
-- limit is locked until `locked_until` (UTC ms).
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT
);
CREATE INDEX login_throttle_window ON login_throttle (window_start);
