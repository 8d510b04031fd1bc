#!/bin/sh
# Creates the stack's TLS files in deploy/kafka/tls/: a private CA (ca.pem, the clients' trust
# anchor) and the broker's certificate for the host name `kafka` (broker.pem: key + certificate, the
# PEM keystore Kafka reads). For production, issue the broker certificate from your own CA instead.
set -eu
cd "$(dirname "$0")/tls"
openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=gpu-breakfix kafka CA" -keyout ca.key -out ca.pem
openssl req -newkey rsa:3072 -nodes -subj "/CN=kafka" -keyout broker.key -out broker.csr
printf 'subjectAltName=DNS:kafka,DNS:localhost\n' > san.ext
openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile san.ext -out broker.crt
cat broker.key broker.crt > broker.pem
chmod 600 ca.key broker.key broker.pem
rm -f broker.csr san.ext
echo "wrote $(pwd)/ca.pem and $(pwd)/broker.pem"
