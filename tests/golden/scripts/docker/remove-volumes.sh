set -e
docker volume rm todo-app1.data >/dev/null
docker volume rm todo-db-2.data >/dev/null
