"""Split cost allocation: cluster node and volume charges of the cloud bill, split onto the
Kubernetes workloads that used them (FOCUS 1.3 Allocated* rows), conserving every charge exactly.

`usage` loads OpenShift usage payloads into `k8s_usage`; `split` computes the split of each
origin charge; `store` replaces a cluster-period's allocation in one transaction and checks
conservation before it commits; `run` ties them together for `costflow allocate`.
"""
