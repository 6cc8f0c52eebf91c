"""OpenAI's official Python SDK against Switchyard's /v1 surface, driven by
tests/e2e/ai_gateway.rs: argv[1] is the base URL (`<serve>/v1`), argv[2] the tenant's key.
The tenant's gateway is configured by the Rust test over the fake upstream (see its
`SDK_GATEWAY`). Each check raises on failure; the last line printed is "sdk ok"."""

import sys
import time

import openai

base_url, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)
USER = [{"role": "user", "content": "one two three four five"}]


def check(condition, what):
    if not condition:
        raise AssertionError(what)


# The models are the tenant's aliases.
listed = sorted(model.id for model in client.models.list())
check(
    listed == ["busy", "cutting", "embed", "fallback", "smart", "stream-fallback"],
    f"models.list(): {listed}",
)
print("models", listed)

# A whole chat: the fake's echo and its word-count usage, in OpenAI's object.
chat = client.chat.completions.create(model="smart", messages=USER)
check(chat.object == "chat.completion", f"object: {chat.object}")
check(
    chat.choices[0].message.content == "echo: one two three four five",
    f"content: {chat.choices[0].message.content!r}",
)
check(chat.choices[0].finish_reason == "stop", f"finish: {chat.choices[0].finish_reason}")
check(
    (chat.usage.prompt_tokens, chat.usage.completion_tokens, chat.usage.total_tokens)
    == (5, 6, 11),
    f"usage: {chat.usage}",
)
print("chat", chat.choices[0].message.content, chat.usage.total_tokens)

# A streamed chat: several content chunks that join into the whole answer, and the usage.
stream = client.chat.completions.create(
    model="smart", messages=USER, stream=True, stream_options={"include_usage": True}
)
pieces, usage, finish = [], None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
check(len(pieces) > 1, f"one content chunk only: {pieces}")
check("".join(pieces) == "echo: one two three four five", f"joined: {pieces}")
check(finish == "stop", f"finish_reason: {finish}")
check(usage is not None and usage.total_tokens == 11, f"stream usage: {usage}")
print("stream chunks", len(pieces))

# Chunks are passed on as the upstream writes them, not gathered: the `…-cut` model streams
# its first words, waits 20 ms and drops the connection. The words reach the SDK before the
# in-band error does, by about that pause; a gateway that buffered the answer would deliver
# them together (or not at all).
stream = client.chat.completions.create(model="cutting", messages=USER, stream=True)
arrivals, cut_at = [], None
try:
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                arrivals.append((time.perf_counter(), choice.delta.content))
except openai.APIError as e:
    cut_at = time.perf_counter()
    print("cut with", type(e).__name__, getattr(e, "code", None))
check(cut_at is not None, "the cut stream ended without an error")
check(len(arrivals) >= 1, "no chunk arrived before the cut")
check(
    "".join(text for _, text in arrivals).startswith("echo:"),
    f"cut stream's text: {arrivals}",
)
lead = cut_at - arrivals[0][0]
check(lead >= 0.010, f"the first chunk came only {lead * 1000:.1f} ms before the cut")
print(f"first chunk {lead * 1000:.1f} ms before the cut")

# Embeddings, as the SDK asks by default (base64, decoded by the SDK): 8 dimensions, the same
# numbers as asked as floats.
packed = client.embeddings.create(model="embed", input=["alpha beta", "gamma"])
floats = client.embeddings.create(
    model="embed", input=["alpha beta", "gamma"], encoding_format="float"
)
check(len(packed.data) == 2, f"embeddings: {len(packed.data)}")
for a, b in zip(packed.data, floats.data):
    check(len(a.embedding) == 8, f"dimensions: {len(a.embedding)}")
    check(
        all(abs(x - y) < 1e-6 for x, y in zip(a.embedding, b.embedding)),
        f"base64 {a.embedding} differs from float {b.embedding}",
    )
# The domain's `embed` carries no usage, so the gateway reports (and charges) its bound on
# the prompt, at least the 3 tokens the fake counts, rather than the upstream's own count.
check(
    packed.usage.prompt_tokens >= 3
    and packed.usage.total_tokens == packed.usage.prompt_tokens,
    f"embedding usage: {packed.usage}",
)
print("embeddings", len(packed.data), "x", len(packed.data[0].embedding))

# A 429 the gateway answers (every target of `busy` rate limits) is the SDK's RateLimitError.
try:
    client.chat.completions.create(model="busy", messages=USER)
    raise AssertionError("busy answered")
except openai.RateLimitError as e:
    check(e.status_code == 429, f"status {e.status_code}")
    check(e.code == "rate_limited", f"code {e.code}")
    check(isinstance(e.body, dict) and e.body.get("code") == "rate_limited", f"body {e.body}")
    print("busy", type(e).__name__, e.code)

# The tenant's own rate limit (1 request per minute for each end user): the second call of a
# user in the same minute is refused (a third covers a minute that turned in between).
refused = None
for attempt in range(3):
    try:
        client.chat.completions.create(model="smart", messages=USER, user="limited-user")
    except openai.RateLimitError as e:
        refused = e
        break
check(refused is not None and attempt >= 1, f"the user limit never refused ({attempt})")
check(refused.code == "rate_limited", f"user limit code {refused.code}")
print("user limit", type(refused).__name__, refused.code)

# A failing first target (`fake-500`) falls back to the one of weight 0.
chat = client.chat.completions.create(model="fallback", messages=USER)
check(
    chat.choices[0].message.content == "echo: one two three four five",
    f"fallback content: {chat.choices[0].message.content!r}",
)
check(chat.model == "fake-ok", f"fallback model: {chat.model}")
print("fallback", chat.model)

# A stream whose first target sends no first token in time falls back before anything was
# sent, and completes with the next target's answer.
stream = client.chat.completions.create(model="stream-fallback", messages=USER, stream=True)
text, model = "", None
for chunk in stream:
    model = chunk.model
    for choice in chunk.choices:
        text += choice.delta.content or ""
check(text == "echo: one two three four five", f"stream fallback text: {text!r}")
check(model == "fake-ok", f"stream fallback model: {model}")
print("stream fallback", model)

# A model that is no alias of the tenant's is the SDK's NotFoundError.
try:
    client.chat.completions.create(model="gpt-4o", messages=USER)
    raise AssertionError("an unknown model answered")
except openai.NotFoundError as e:
    check(e.status_code == 404, f"status {e.status_code}")
    print("unknown model", type(e).__name__, e.code)

print("sdk ok")
