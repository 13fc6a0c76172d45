"""``/console``: the operators' pages, server-rendered, behind the admin token (docs/api.md,
"Console"). Sign-in and the guard are in :mod:`.auth`, pages that read in :mod:`.views`, pages
that replay in :mod:`.actions`; what they read comes from :mod:`payhook.services.story` and
:mod:`payhook.services.triage`."""

from starlette.routing import Route

from payhook.api.console import actions, auth, views

routes = [
    Route("/console", views.home, methods=["GET"]),
    Route("/console/sign-in", auth.sign_in_page, methods=["GET"]),
    Route("/console/sign-in", auth.sign_in, methods=["POST"]),
    Route("/console/sign-out", auth.sign_out, methods=["POST"]),
    Route("/console/search", views.search, methods=["GET"]),
    Route("/console/sessions/{id}", views.session, methods=["GET"]),
    Route("/console/outbox", views.outbox, methods=["GET"]),
    Route("/console/outbox/{id}/replay", actions.replay_one, methods=["POST"]),
    Route("/console/outbox/{id}/retry", actions.retry_one, methods=["POST"]),
    Route("/console/deliveries", views.delivery_list, methods=["GET"]),
    Route("/console/deliveries/{id}/retry", actions.retry_delivery, methods=["POST"]),
    Route("/console/anomalies", views.anomaly_list, methods=["GET"]),
    Route("/console/events", views.event_list, methods=["GET"]),
    Route("/console/replays", views.replay_list, methods=["GET"]),
    Route("/console/replay", actions.bulk_form, methods=["GET"]),
    Route("/console/replay/preview", actions.preview, methods=["GET"]),
    Route("/console/replay", actions.bulk_replay, methods=["POST"]),
]
