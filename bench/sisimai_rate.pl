#!/usr/bin/perl
# Sisimai's parsing rate over the files named on the command line, start-up excluded: every file is
# read into memory first, then parsed `rounds` times through Sisimai->make(\$string); the best
# round's wall-clock and CPU (user+system of this process, CLOCK_PROCESS_CPUTIME_ID: Perl's `times`
# counts in 10 ms ticks, too coarse for a 0.2 s round) rates are printed as one JSON line.
# Used by bench/bounce.py (Debian's libsisimai-perl).
use strict;
use warnings;
use Sisimai;
use Time::HiRes qw(time clock_gettime CLOCK_PROCESS_CPUTIME_ID);

my $rounds = 5;
if (@ARGV && $ARGV[0] =~ /\A--rounds=(\d+)\z/) { $rounds = $1; shift @ARGV }
my @blobs;
for my $path (@ARGV) {
    open my $fh, '<:raw', $path or die "cannot read $path: $!";
    local $/;
    push @blobs, scalar <$fh>;
    close $fh;
}
my ($best_wall, $best_cpu, $found) = (0, 0, 0);
for my $round (1 .. $rounds) {
    my ($t0, $c0) = (time, clock_gettime(CLOCK_PROCESS_CPUTIME_ID));
    $found = 0;
    for my $blob (@blobs) {
        my $parsed = Sisimai->make(\$blob);
        $found += scalar @{ $parsed || [] };
    }
    my ($t1, $c1) = (time, clock_gettime(CLOCK_PROCESS_CPUTIME_ID));
    my $cpu = $c1 - $c0;
    my $wall_rate = @blobs / (($t1 - $t0) || 1e-9);
    my $cpu_rate = @blobs / ($cpu || 1e-9);
    $best_wall = $wall_rate if $wall_rate > $best_wall;
    $best_cpu = $cpu_rate if $cpu_rate > $best_cpu;
}
printf qq({"version": "%s", "mails": %d, "records": %d, "wall": %.1f, "cpu": %.1f}\n),
    $Sisimai::VERSION, scalar @blobs, $found, $best_wall, $best_cpu;
