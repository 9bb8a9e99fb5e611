# One pvyhs under SyTest: its own folder (hs_dir), one TLS listener serving
# the client, federation, key and media APIs on a port SyTest allocates, a
# certificate signed by SyTest's test CA (keys/ca.crt, which pvyhs trusts for
# federation as Synapse's SyTest config does), an embedded PostgreSQL cluster
# in <hs_dir>/data made afresh at each start, and SyTest's shared secret
# "reg_secret" for /_synapse/admin/v1/register. pvyhs tells SyTest it is
# ready over $NOTIFY_SOCKET (sd_notify READY=1), once it listens.
use strict;
use warnings;

package SyTest::Homeserver::Pvyhs;
use base qw( SyTest::Homeserver );

use Carp;
use Cwd qw( getcwd abs_path );
use File::Path qw( remove_tree );
use JSON ();

use SyTest::SSL qw( ensure_ssl_key create_ssl_cert );

sub _init
{
   my $self = shift;
   my ( $args ) = @_;

   $self->{$_} = delete $args->{$_} for qw( bindir );
   defined $self->{bindir} or croak "Need a bindir (--pvyhs-binary-directory)";

   $self->{paths} = {};
   $self->SUPER::_init( $args );

   my $idx = $self->{hs_index};
   $self->{ports} = {
      pvyhs => main::alloc_port( "pvyhs[$idx]" ),
   };
}

sub server_name
{
   my $self = shift;
   return $self->{bind_host} . ":" . $self->secure_port;
}

sub federation_host
{
   my $self = shift;
   return $self->{bind_host};
}

sub federation_port
{
   my $self = shift;
   return $self->secure_port;
}

sub secure_port
{
   my $self = shift;
   return $self->{ports}{pvyhs};
}

sub public_baseurl
{
   my $self = shift;
   return "https://$self->{bind_host}:" . $self->secure_port;
}

# Rate limits out of the way, as SyTest's Synapse config has them.
sub _no_limit { return { per_second => 100000, burst_count => 100000 } }

sub _config
{
   my $self = shift;
   my $hs_dir = $self->{hs_dir};
   my $cwd = getcwd;
   my $nl = \&_no_limit;

   return {
      server_name    => $self->server_name,
      public_baseurl => $self->public_baseurl . "/",
      listeners => [ {
         port           => $self->secure_port,
         bind_addresses => [ "127.0.0.1" ],
         tls            => JSON::true,
         resources      => [ { names => [ qw( client federation keys media ) ] } ],
      } ],
      tls_certificate_path      => $self->{paths}{cert_file},
      tls_private_key_path      => $self->{paths}{key_file},
      data_dir                  => "$hs_dir/data",
      signing_key_path          => "$hs_dir/signing.key",
      media_encryption_key_path => "$hs_dir/media.key",
      log_level                 => $ENV{PVYHS_LOG_LEVEL} // "info",

      enable_registration                      => JSON::true,
      enable_registration_without_verification => JSON::true,
      registration_shared_secret               => "reg_secret",
      allow_guest_access                       => JSON::true,
      # Synapse records clients' IPs by default (48admin.pl's /whois reads them).
      track_client_ips                         => JSON::true,

      # SyTest assumes an open room directory (as its Synapse config says).
      allow_public_rooms_without_auth    => JSON::true,
      allow_public_rooms_over_federation => JSON::true,
      room_list_publication_rules        => [ { action => "allow" } ],

      # Synapse's defaults, which SyTest's tests were written against:
      # unencrypted new rooms, room version 10.
      encryption_enabled_by_default_for_room_type => "off",
      default_room_version                        => "10",

      url_preview_enabled            => JSON::true,
      url_preview_ip_range_blacklist => [],

      # Every server here is on loopback: SyTest's own federation server
      # and the other homeserver. Both present certificates from SyTest's CA.
      ip_range_blacklist             => [],
      federation_verify_certificates => JSON::true,
      federation_custom_ca_list      => [ "$cwd/keys/ca.crt" ],
      trusted_key_servers            => [],
      allow_device_name_lookup_over_federation => JSON::true,

      app_service_config_files => $self->{app_service_config_files} // [],

      rc_message         => $nl->(),
      rc_registration    => $nl->(),
      rc_login           => { address => $nl->(), account => $nl->(), failed_attempts => $nl->() },
      rc_joins           => { local => $nl->(), remote => $nl->() },
      rc_invites         => { per_room => $nl->(), per_user => $nl->() },
      rc_knocks          => { per_room => $nl->(), per_user => $nl->() },
      rc_admin_redaction => $nl->(),
   };
}

sub _stop_stale_cluster
{
   my ( $pidfile ) = @_;
   open my $fh, "<", $pidfile or return;
   my $pid = <$fh>;
   close $fh;
   chomp $pid if defined $pid;
   return unless defined $pid and $pid =~ m/^\d+$/ and kill 0, $pid;
   kill 'INT', $pid;
   # A fast shutdown of an idle cluster takes well under a second.
   foreach ( 1 .. 50 ) {
      last unless kill 0, $pid;
      select undef, undef, undef, 0.1;
   }
}

sub start
{
   my $self = shift;
   my $hs_dir = $self->{hs_dir};
   my $output = $self->{output};
   my $idx = $self->{hs_index};

   # A fresh server each run: the database, keys and media of the last one go.
   # If the last pvyhs died (a crash), its embedded PostgreSQL still runs on
   # that folder: stop it first (SIGINT, a fast shutdown, to the postmaster
   # whose PID heads postmaster.pid), or it would hold the deleted files.
   _stop_stale_cluster( "$hs_dir/data/pg/data/postmaster.pid" );
   remove_tree( "$hs_dir/data" ) if -d "$hs_dir/data";
   unlink "$hs_dir/signing.key", "$hs_dir/media.key";
   chmod 0755, $hs_dir;  # the embedded cluster's user must reach data/

   $self->{paths}{cert_file} = "$hs_dir/tls.crt";
   $self->{paths}{key_file}  = "$hs_dir/tls.key";
   ensure_ssl_key( $self->{paths}{key_file} );
   create_ssl_cert( $self->{paths}{cert_file}, $self->{paths}{key_file}, $self->{bind_host} );

   my $config = $self->{paths}{config} = $self->write_yaml_file( "homeserver.yaml" => $self->_config );
   my $log = $self->{paths}{log} = "$hs_dir/pvyhs.log";

   my $bindir = abs_path( $self->{bindir} );
   my $bin = "$bindir/pvyhs";
   -x $bin or die "No pvyhs binary at $bin\n";

   $output->diag( "Starting pvyhs $idx on port " . $self->secure_port . " (log $log)" );

   # Its log goes to a file (appended: one file per server and SyTest run)
   # for the failure analysis; SyTest keeps only a process's last lines.
   return $self->_start_process_and_await_notify(
      setup => [ env => { %ENV, PVYHS_THUMBNAILER => "$bindir/pvyhs-thumbnail" } ],
      command => [ "/bin/sh", "-c", 'exec "$0" serve --config "$1" >>"$2" 2>&1', $bin, $config, $log ],
      name => "pvyhs-$idx",
   )->else( sub {
      die "Unable to start pvyhs $idx: $_[0] (see $log)\n";
   })->on_done( sub {
      $output->diag( "Started pvyhs $idx" );
   });
}

1;
