"""A third-party Kafka client (kafka-python) reading what Switchyard published.

Usage: read_cloudevents.py BROKERS TOPIC COUNT
Prints one JSON object per record: {"key", "headers", "value"} with headers decoded as UTF-8,
and exits non-zero when fewer than COUNT records arrive within 30 seconds.
"""
import json
import sys

from kafka import KafkaConsumer

brokers, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(
    topic,
    bootstrap_servers=brokers,
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    consumer_timeout_ms=30000,
    api_version=(2, 5, 0),
)
seen = 0
for record in consumer:
    print(json.dumps({
        "key": record.key.decode() if record.key is not None else None,
        "headers": {name: value.decode() for name, value in record.headers},
        "value": json.loads(record.value),
    }))
    seen += 1
    if seen >= count:
        break
consumer.close()
sys.exit(0 if seen >= count else 1)
