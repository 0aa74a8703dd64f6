"""The project's own services, one module each: `python3 scripts/stack.py new NAME` adds one.

Each is served by the template's runtime as ``services.<module>:<Class>``: from Compose
(``command: ["serve", "services.<module>:<Class>"]``), Kubernetes (the Deployment's ``args``) or
``python -m service_template serve services.<module>:<Class>``.
"""
