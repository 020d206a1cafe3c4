"""Sample OpenShift usage payloads (`costflow.usage.openshift.samples.cluster`)."""
