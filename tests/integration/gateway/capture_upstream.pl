#!/usr/bin/perl
# capture_upstream.pl PORT DIR — a deliberately naive upstream for hostile-input tests.
#
# Every request it receives is written byte for byte to DIR/req.<pid>.<n> before it
# answers "200 ok". It frames requests the lenient way some portals do (a bare CR
# or LF ends a header line), so that whatever could smuggle a header or a second
# request past the gateway shows up in the capture. One process per connection:
# the gateway keeps upstream connections alive.
use strict;
use warnings;
use IO::Socket::INET;

my ($port, $dir) = @ARGV;
die "usage: capture_upstream.pl PORT DIR\n" unless defined $dir && -d $dir;
$SIG{CHLD} = 'IGNORE';
my $srv = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port", Listen => 64, ReuseAddr => 1)
    or die "listen 127.0.0.1:$port: $!\n";

while (1) {
    my $c = $srv->accept or next;
    my $pid = fork();
    if (!defined $pid) { close $c; next; }
    if ($pid) { close $c; next; }
    close $srv;
    serve($c);
    exit 0;
}

sub serve {
    my ($c) = @_;
    my $buf = '';
    my $n = 0;
    while (1) {
        my $end;
        while (($end = index($buf, "\r\n\r\n")) < 0) {
            my $r = sysread($c, $buf, 65536, length $buf);
            return if !$r;
        }
        my $head = substr($buf, 0, $end + 4);
        my $need = 0;
        # Lenient, on purpose: any CR or LF ends a line here.
        for my $line (split /\r\n|\r|\n/, $head) {
            $need = $1 if $line =~ /^content-length:\s*(\d+)/i;
        }
        if ($head =~ /^transfer-encoding:\s*chunked/im) {
            my $z;
            while (($z = index($buf, "0\r\n\r\n", $end + 4)) < 0) {
                my $r = sysread($c, $buf, 65536, length $buf);
                return if !$r;
            }
            $need = $z + 5 - ($end + 4);
        }
        while (length($buf) < $end + 4 + $need) {
            my $r = sysread($c, $buf, 65536, length $buf);
            return if !$r;
        }
        my $req = substr($buf, 0, $end + 4 + $need, '');
        $n++;
        open(my $f, '>', "$dir/req.$$.$n") or die "capture: $!\n";
        binmode $f;
        print $f $req;
        close $f;
        print $c "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
    }
}
