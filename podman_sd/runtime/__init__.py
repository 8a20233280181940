"""Running a pod: namespaces, root filesystems, app processes, supervision."""
