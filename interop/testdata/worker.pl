#!/usr/bin/perl
# Interop test worker for Gearman::Worker (libgearman-client-perl).
#
# Usage: perl worker.pl HOST:PORT MAXJOBS FUNCTION=BEHAVIOUR[@TIMEOUT] ...
#
# FUNCTION=BEHAVIOUR@TIMEOUT registers with CAN_DO_TIMEOUT TIMEOUT (the number
# goes on the wire as given; servers read it as milliseconds, at least 1000).
# Serves at most MAXJOBS jobs (every assignment counts, also a repeated one),
# then exits. Output lines (flushed):
#   READY                                  all functions registered
#   START <fn> <handle> <workload>         a job was assigned
#   END <fn> <handle>                      the callback returned
#   EXIT <jobs>                            leaving normally
#
# Behaviours:
#   reverse  return scalar reverse(workload)
#   upper    return uc(workload)
#   fail     return undef (Gearman::Worker sends WORK_FAIL)
#   status   set_status(1, 3), print "STATUS_SENT <handle>", wait for
#            $RELEASE_FILE, return "status-done:<workload>"
#   hold     wait for $RELEASE_FILE, return "held:<workload>"
#   die      die "died:<workload>" (Gearman::Worker sends WORK_EXCEPTION with the
#            Storable-frozen message, then WORK_FAIL for the same handle)
#   empty    return "" (WORK_COMPLETE whose body is the handle alone)
#   zero     return "0" (the same packet: Gearman::Worker drops a false result)
#   overrun  the first time a handle is assigned: sleep $OVERRUN_SECONDS
#            (default 2.5), print "OVERRAN <handle>", return "late:<workload>";
#            any later assignment of that handle: return "again:<workload>"
use strict;
use warnings;
use FindBin;
require "$FindBin::Bin/jobserver.pl"; # job_server
use Gearman::Worker;
use Time::HiRes qw(time sleep);

$| = 1;
die "usage: worker.pl HOST:PORT MAXJOBS FN=BEHAVIOUR...\n" if @ARGV < 3;
my ($server, $max, @specs) = @ARGV;
my $release = $ENV{RELEASE_FILE} // '';
my $deadline = time + ($ENV{IDLE_DEADLINE} || 25);
my $jobs = 0;
my $overrun = $ENV{OVERRUN_SECONDS} || 2.5;
my %seen; # handle -> times assigned

sub wait_release {
    my $until = time + 20;
    while ($release ne '' && !-e $release) {
        if (time > $until) { print "RELEASE_TIMEOUT\n"; return; }
        sleep 0.01;
    }
}

my $worker = Gearman::Worker->new(job_servers => [job_server($server)]);
for my $spec (@specs) {
    my ($fn, $behaviour) = split /=/, $spec, 2;
    my $timeout;
    ($behaviour, $timeout) = ($1, $2) if $behaviour =~ /^(.*)@(\d+)$/;
    $worker->register_function($fn, (defined $timeout ? ($timeout) : ()), sub {
        my $job = shift;
        $jobs++;
        my $w = $job->arg;
        my $h = $job->handle;
        print "START $fn $h $w\n";
        my $ret;
        if ($behaviour eq 'reverse') {
            $ret = scalar reverse $w;
        } elsif ($behaviour eq 'upper') {
            $ret = uc $w;
        } elsif ($behaviour eq 'fail') {
            $ret = undef;
        } elsif ($behaviour eq 'status') {
            $job->set_status(1, 3);
            print "STATUS_SENT $h\n";
            wait_release();
            $ret = "status-done:$w";
        } elsif ($behaviour eq 'hold') {
            wait_release();
            $ret = "held:$w";
        } elsif ($behaviour eq 'die') {
            print "END $fn $h\n";
            die "died:$w\n";
        } elsif ($behaviour eq 'empty') {
            $ret = "";
        } elsif ($behaviour eq 'zero') {
            $ret = "0";
        } elsif ($behaviour eq 'overrun') {
            if ($seen{$h}++) {
                $ret = "again:$w";
            } else {
                sleep $overrun;
                print "OVERRAN $h\n";
                $ret = "late:$w";
            }
        } else {
            print "UNKNOWN_BEHAVIOUR $behaviour\n";
            exit 2;
        }
        print "END $fn $h\n";
        return $ret;
    }) or do { print "REGISTER_FAILED $fn\n"; exit 1; };
}

print "READY\n";
$worker->work(stop_if => sub { $jobs >= $max || time > $deadline });
print "EXIT $jobs\n";
