"""The operator HTTP API: one audited surface over nodes, repair plans, workflows and the control levers.

Build it with :func:`breakfix.api.app.create_app` from an :class:`breakfix.api.context.ApiContext`;
``breakfix serve`` wires the real parts (store, Kafka, actuators) and runs it under uvicorn.
"""
