#!/usr/bin/env bash
# Start the compose broker as `lintas up` starts the local one: render server.properties
# with the passwords, format the storage once with the platform super-user's SCRAM
# credential (the image's own start scripts cannot add SCRAM credentials), then run Kafka.
set -euo pipefail

: "${KAFKA_PLATFORM_PASSWORD:?set KAFKA_PLATFORM_PASSWORD}"
: "${KAFKA_CONTROLLER_PASSWORD:?set KAFKA_CONTROLLER_PASSWORD}"
tls_host="${KAFKA_TLS_HOST:-localhost}"
conf=/tmp/server.properties

template="$(cat /etc/lintas/kafka/server.properties.in)"
rendered="${template//@PLATFORM_PASSWORD@/$KAFKA_PLATFORM_PASSWORD}"
rendered="${rendered//@CONTROLLER_PASSWORD@/$KAFKA_CONTROLLER_PASSWORD}"
rendered="${rendered//@TLS_HOST@/$tls_host}"
# The file holds passwords: readable by the broker's user only.
umask 077
printf '%s\n' "$rendered" > "$conf"

if [[ ! -f /var/lib/kafka/data/meta.properties ]]; then
  cluster_id="$(/opt/kafka/bin/kafka-storage.sh random-uuid)"
  /opt/kafka/bin/kafka-storage.sh format -t "$cluster_id" -c "$conf" \
    --add-scram "SCRAM-SHA-512=[name=lintas,password=$KAFKA_PLATFORM_PASSWORD]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
