"""A stand-in for the official PostgreSQL image, for `make services` on machines that cannot
pull images (our CI). It keeps the part of the official image's interface that compose.yaml
uses: POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB create the role and the database on the
first start, data lives in /var/lib/postgresql/data (the named volume), `pg_isready` is on PATH.
Debian bookworm's PostgreSQL 15, built with debootstrap once and cached like the Python base.
"""

from tests.image import engine as engines

TAG = "localhost/hurricane-postgres-standin:15"
PACKAGES = ("postgresql-15",)
BIN = "/usr/lib/postgresql/15/bin"
ENTRYPOINT = "/usr/local/bin/standin-postgres"

SCRIPT = f"""#!/bin/sh
# First start: a cluster owned by POSTGRES_USER with its password, and the database POSTGRES_DB.
set -eu
data=/var/lib/postgresql/data
mkdir -p "$data" /run/postgresql
chown postgres:postgres "$data" /run/postgresql
chmod 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
    printf '%s\\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
    chown postgres /tmp/pwfile
    runuser -u postgres -- {BIN}/initdb --pgdata="$data" --username="$POSTGRES_USER" \\
        --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm /tmp/pwfile
    echo "host all all all scram-sha-256" >> "$data/pg_hba.conf"
    runuser -u postgres -- {BIN}/pg_ctl --pgdata="$data" -o "-c listen_addresses=''" -w start
    runuser -u postgres -- psql --username="$POSTGRES_USER" --dbname=postgres \\
        --command="CREATE DATABASE \\"$POSTGRES_DB\\""
    runuser -u postgres -- {BIN}/pg_ctl --pgdata="$data" -m fast -w stop
fi
exec runuser -u postgres -- {BIN}/postgres -D "$data" -c listen_addresses='*'
"""


def import_image(engine: engines.Engine) -> str:
    """Build (or reuse) the cached root file system and import it into ``engine``."""
    tarball = engines.standin_rootfs_tar(PACKAGES, {ENTRYPOINT: SCRIPT})
    engine.run(
        "import",
        "--change",
        f'CMD ["{ENTRYPOINT}"]',
        "--change",
        f"ENV PATH={BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        "STOPSIGNAL SIGINT",
        str(tarball),
        TAG,
        timeout=600,
    )
    return TAG
