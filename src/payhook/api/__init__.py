"""HTTP entrypoints: merchant /v1, provider webhooks, public pages, operators' /admin."""
