"""Exit statuses of the launcher that mean something to systemd's unit settings."""

# activeDeadlineSeconds ran out. The generator lists it in
# RestartPreventExitStatus=, so the pod ends failed instead of restarting, as a
# Kubernetes pod does (reason DeadlineExceeded). 124 is timeout(1)'s status.
EXIT_DEADLINE = 124
