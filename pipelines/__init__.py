"""The post lifecycle: storage, ingest, dedupe, classify, route, review, outbox and LAPOR! senders."""
