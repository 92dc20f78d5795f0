"""Loopback fakes of the services emotag talks to, as strict as the real ones: Gemini
(`gemini_api`, its bodies checked against Google's protos in `google_protos`), OpenAI and
any compatible server (`openai_api`), and a forward proxy (`proxy`). `server` is what they
share: the HTTP server, the JSON handler and the way a test scripts a reply; `colours`,
how a fake "sees" a test image."""
