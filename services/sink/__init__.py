"""Provincial and national sinks (省公共信用信息中心, 信用中国): relay topic -> store -> query API and public page."""
