"""Deployment descriptors of the services costflow runs, rendered from the compute config.

`cloud_run` renders the MCP server as a Cloud Run service (Knative ``serving.knative.dev/v1``
YAML for ``gcloud run services replace``). The image is built from ``deploy/mcp/Dockerfile``.
"""
