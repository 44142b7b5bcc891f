"""The consumer-lag exporter (`sgs lag-exporter`): `collector` asks the cluster for every group's lag at scrape time;
`service` serves it on `/metrics`."""
