set -e
podman volume rm todo-app1.data >/dev/null
podman volume rm todo-db-2.data >/dev/null
