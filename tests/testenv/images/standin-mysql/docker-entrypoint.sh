#!/bin/sh
# TEST FIXTURE entrypoint of the mysql:5.7 stand-in. On first start with an empty /var/lib/mysql it creates
# the system tables, then, on a temporary server reachable only through its socket, sets root's password
# (root@localhost and root@'%', no other root accounts) and creates MYSQL_DATABASE and MYSQL_USER (all
# privileges on that database, from any host), as the official image does. Then, and on every later start,
# it runs the server in its place.
set -e
if [ "${1#-}" != "$1" ]; then set -- mysqld "$@"; fi
case "$1" in mysqld|mariadbd) shift; set -- mariadbd --user=mysql "$@" ;; *) exec "$@" ;; esac
DATADIR=/var/lib/mysql
sql() { printf '%s\n' "$*"; }   # not echo: dash's echo would eat the backslashes in passwords
sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"; }

mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld "$DATADIR"
if [ ! -d "$DATADIR/mysql" ]; then
    if [ -n "$MYSQL_RANDOM_ROOT_PASSWORD" ]; then
        MYSQL_ROOT_PASSWORD=$(head -c 18 /dev/urandom | base64); echo "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
    elif [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "$MYSQL_ALLOW_EMPTY_PASSWORD" ]; then
        echo >&2 'error: database is uninitialized and password option is not specified'
        echo >&2 '  You need to specify one of MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD and MYSQL_RANDOM_ROOT_PASSWORD'
        exit 1
    fi
    echo 'Initializing database'
    mariadb-install-db --user=mysql --datadir="$DATADIR" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve > /dev/null
    echo 'Database initialized'
    "$@" --skip-networking --socket=/run/mysqld/mysqld.sock & pid=$!
    for i in $(seq 30); do mariadb -uroot -e 'SELECT 1' > /dev/null 2>&1 && break; sleep 1; done
    echo 'MySQL init process in progress...'
    pw=$(sql_string "$MYSQL_ROOT_PASSWORD")
    {
        sql "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';"
        sql "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@''', @@hostname, '''');"
        sql "ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
        sql "CREATE USER 'root'@'%' IDENTIFIED BY $pw; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        [ -z "$MYSQL_DATABASE" ] || sql "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
        if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
            sql "CREATE USER $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
            [ -z "$MYSQL_DATABASE" ] || sql "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO $(sql_string "$MYSQL_USER")@'%';"
        fi
    } | mariadb -uroot
    kill "$pid"; wait "$pid"
    echo; echo 'MySQL init process done. Ready for start up.'; echo
fi
exec "$@"
