module weft.bench/go_tls

go 1.19
