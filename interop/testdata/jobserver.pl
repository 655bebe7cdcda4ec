# Shared by client.pl and worker.pl: the job server to connect to.
#
# job_server(HOST:PORT) is HOST:PORT, or with GEARMAN_SSL=1 a TLS server: verified against
# $SSL_CA_FILE, presenting $SSL_CERT_FILE / $SSL_KEY_FILE when set (IO::Socket::SSL, through
# Gearman::Objects' use_ssl).
use strict;
use warnings;

sub job_server {
    my ($hp) = @_;
    return $hp unless $ENV{GEARMAN_SSL};
    my ($h, $p) = ($hp =~ /^(.*):(\d+)$/);
    my %js = (host => $h, port => $p, use_ssl => 1);
    $js{ca_file}   = $ENV{SSL_CA_FILE}   if $ENV{SSL_CA_FILE};
    $js{cert_file} = $ENV{SSL_CERT_FILE} if $ENV{SSL_CERT_FILE};
    $js{key_file}  = $ENV{SSL_KEY_FILE}  if $ENV{SSL_KEY_FILE};
    return \%js;
}

1;
