#!/usr/bin/env python3
"""ai/__NAME__: a remote ai provider (embed, classify) by hashed bag of words: each word of a
text adds 1 to one of 256 dimensions picked by its CRC-32, and the vector is scaled to length 1.
Deterministic and offline, not a language model: replace `vector` with a real model's
embeddings and keep the rest.

Run: python3 service.py --port 9400 (see switchyard_protocol.py for the protocol).
"""

import math
import re
import zlib

from switchyard_protocol import Problem, serve

DIMENSIONS = 256
MODEL = "__NAME__-hashed-words-256"


def vector(text):
    v = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        v[zlib.crc32(word.encode()) % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm else v


def cosine(a, b):
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    if not na or not nb:
        return 0.0
    return max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b)) / (na * nb)))


class Engine:
    def __init__(self, tenant, config):
        self.tenant = tenant

    def invoke(self, action, p):
        if action == "embed":
            return {"model": MODEL, "dimensions": DIMENSIONS,
                    "vectors": [vector(t) for t in p["texts"]]}
        if action == "classify":
            seen = set()
            for i, label in enumerate(p["labels"]):
                if label["name"] in seen:
                    raise Problem(422, "params_unprocessable", "label names must be unique",
                                  f"/labels/{i}/name")
                seen.add(label["name"])
            text = vector(p["text"])
            scores = []
            for label in p["labels"]:
                examples = [vector(e) for e in label["examples"]]
                centroid = [sum(xs) for xs in zip(*examples)]
                scores.append({"label": label["name"], "score": cosine(text, centroid)})
            best = max(s["score"] for s in scores)
            winner = next(s["label"] for s in scores if s["score"] == best)
            return {"label": winner, "scores": scores}
        raise Problem(404, "action_not_found", f"ai/__NAME__ has no action {action}")


if __name__ == "__main__":
    serve("ai/__NAME__", Engine)
