-- One database per store of the compose deployment (docker-compose.yml mounts this as an init script).
CREATE DATABASE sink_provincial;
CREATE DATABASE sink_national;
CREATE DATABASE aggregates;
CREATE DATABASE refbase;
