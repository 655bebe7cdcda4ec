#!/usr/bin/perl
# Interop test client for Gearman::Client (libgearman-client-perl).
#
# Usage: perl client.pl HOST:PORT COMMAND ARGS...
#
#   do FN ARG [UNIQ]          -> RESULT <result>   or RESULT_UNDEF
#   do-exc FN ARG             -> do with the exceptions option (OPTION_REQ exceptions):
#                                EXCEPTION <message> from on_exception (the message
#                                thawed as Gearman::Worker froze it), then RESULT... as do
#   bg FN ARG [ARG...]        -> HANDLE <handle>   (one per ARG; undef -> HANDLE_UNDEF)
#   status HANDLE             -> STATUS <known> <running> <numerator> <denominator>
#   taskset [--uniq=U] FN ARG [FN ARG ...]
#       adds one task per FN ARG pair to one taskset (printing SUBMITTED <arg> <handle>
#       once the server answered JOB_CREATED), then wait(); callbacks print
#       COMPLETE <arg> <result> | FAIL <arg> | STATUS <arg> <n>/<d>
#       and finally WAITED
# Every command ends with a line "OK".
use strict;
use warnings;
use FindBin;
require "$FindBin::Bin/jobserver.pl"; # job_server
use Gearman::Client;
use Storable ();

$| = 1;
die "usage: client.pl HOST:PORT COMMAND ARGS...\n" if @ARGV < 2;
my ($server, $cmd, @args) = @ARGV;
my $client = Gearman::Client->new(job_servers => [job_server($server)], exceptions => $cmd eq 'do-exc' ? 1 : 0);

if ($cmd eq 'do' || $cmd eq 'do-exc') {
    my ($fn, $arg, $uniq) = @args;
    my %opts = (timeout => 20);
    $opts{uniq} = $uniq if defined $uniq;
    $opts{on_exception} = sub {
        my $frozen = shift;
        my $msg = eval { ${ Storable::thaw($frozen) } } // "UNTHAWABLE $frozen";
        chomp $msg;
        print "EXCEPTION $msg\n";
    };
    my $res = $client->do_task($fn, $arg, \%opts);
    print defined $res ? "RESULT $$res\n" : "RESULT_UNDEF\n";
} elsif ($cmd eq 'bg') {
    my $fn = shift @args;
    for my $arg (@args) {
        my $h = $client->dispatch_background($fn, $arg, { uniq => "perl-$arg" });
        print defined $h ? "HANDLE $h\n" : "HANDLE_UNDEF\n";
    }
} elsif ($cmd eq 'status') {
    my $st = $client->get_status($args[0]);
    unless ($st) { print "STATUS_UNDEF\n"; exit 1; }
    my $p = $st->progress || [0, 0];
    printf "STATUS %d %d %s %s\n", $st->known ? 1 : 0, $st->running ? 1 : 0, @$p;
} elsif ($cmd eq 'taskset') {
    my $uniq;
    if (@args && $args[0] =~ /^--uniq=(.*)$/) { $uniq = $1; shift @args; }
    my $ts = $client->new_task_set;
    while (@args) {
        my ($fn, $arg) = splice @args, 0, 2;
        my %opts = (
            on_complete => sub { my $r = shift; print "COMPLETE $arg $$r\n" },
            on_fail     => sub { print "FAIL $arg\n" },
            on_status   => sub { my ($n, $d) = @_; print "STATUS $arg $n/$d\n" },
        );
        $opts{uniq} = $uniq if defined $uniq;
        my $h = $ts->add_task($fn, $arg, \%opts);
        print defined $h ? "SUBMITTED $arg $h\n" : "ADD_TASK_FAILED $fn $arg\n";
    }
    $ts->wait(timeout => 20);
    print "WAITED\n";
} else {
    print "BAD_COMMAND $cmd\n";
    exit 2;
}
print "OK\n";
