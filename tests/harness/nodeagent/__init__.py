"""A local node agent: a minimal kubelet (and scheduler) for the loopback test control plane.

Why it exists: the tests run a real kube-apiserver and kube-controller-manager (see
:mod:`harness.controlplane`), but these machines have no container runtime, so nothing would
ever run a pod. This agent is the cluster's one node. It registers a Node and heart-beats it,
binds pending pods to it, and runs the containers of *our own image* as local processes, with
what a kubelet would give them: the container's environment (literal, Secret, ConfigMap and
downward-API values), the pod's ServiceAccount identity (a per-pod ``KUBECONFIG`` with the
ServiceAccount token, so RBAC applies to the process), a termination-message file
(``TERMINATION_MESSAGE_PATH``) read back into the container status, restart policies,
``activeDeadlineSeconds`` and graceful deletion. It reports pod status through the
``pods/status`` subresource the way a kubelet does, so the real Job, ReplicaSet and
garbage-collector controllers act on it. Images it does not know stay in ``ErrImagePull`` /
``ImagePullBackOff``.

Processes: every container runs as ``command`` + ``args`` in its own process group (cwd a
per-pod directory under the workdir, output to a log file per container run), behind a tiny
Python shim that kills the whole group when the agent dies - also when the agent process is
SIGKILLed - so a lost agent means lost pods, as with a lost node. A new agent on the same node
name marks the pods whose processes died with the old one as terminated (exit code 137, reason
``NodeAgentRestarted``) and then applies the pod's restart policy.

Volumes: ``emptyDir`` and Secret volumes, and the ServiceAccount token. Not supported: init
containers, probes, other volumes, resource limits, ``resourceFieldRef``, affinity and taints
(``nodeSelector`` is honoured), events.

The rooms, one job each (import them by name; this package exports nothing):

- :mod:`.kube`: the API client, and every write (silenced when the agent is killed);
- :mod:`.processes`: the process table (spawn, signal, reap, kill all);
- :mod:`.identity`: a pod's ServiceAccount token and kubeconfig;
- :mod:`.container` and :mod:`.pod`: one container's state and launch, one pod's lifecycle;
- :mod:`.node`: registering the Node and its heartbeat;
- :mod:`.agent`: the agent loop (pod watch, scheduling, a worker per pod);
- :mod:`.model` and :mod:`.status`: the pure rules of the pod spec, and of what the agent
  reports and sends.

Run as a process: ``python -m harness.nodeagent --kubeconfig K --node-name N --workdir D
--image collectionflow-operator``.
"""
