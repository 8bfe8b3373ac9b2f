#!/bin/sh
# Create the namespace and register the orchestrator's search attributes (idempotent).
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$ns" --retention 30d
for attr in GitSha ResourceGroup Subscription TemplateFile DeploymentState Initiator; do
  temporal operator search-attribute create --namespace "$ns" --name "$attr" --type Keyword 2>/dev/null \
    || echo "search attribute $attr already registered"
done
echo "namespace $ns and search attributes ready"
