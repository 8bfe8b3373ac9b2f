#!/bin/sh
# Create or update Temporal's persistence and visibility schemas in PostgreSQL (idempotent).
set -eu
tool="temporal-sql-tool --plugin postgres12 --ep postgresql -u ${POSTGRES_USER} -p 5432"
schemas=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  case "$db" in temporal) dir=temporal ;; *) dir=visibility ;; esac
  $tool --db "$db" create || true            # exists already on a restart
  $tool --db "$db" setup-schema -v 0.0 || true
  $tool --db "$db" update-schema -d "$schemas/$dir/versioned"
done
echo "schemas ready"
