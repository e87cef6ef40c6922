"""Buttons and dialogs: signed action tokens, the attachments notices carry, what a click or a
dialog submission does, and the HTTP endpoint Mattermost posts them to (with ``/healthz`` and
``/metrics``)."""
