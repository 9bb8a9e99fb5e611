# Crypt::Ed25519 stand-in for SyTest, over CryptX's Crypt::PK::Ed25519
# (Debian's libcryptx-perl): Crypt::Ed25519 has no Debian package and CPAN
# is not reachable from where this harness was written. Only the functions
# SyTest calls are provided, with Crypt::Ed25519's argument order. Keys and
# signatures are raw byte strings: a 32-byte secret (seed), a 32-byte public
# key, a 64-byte signature.
package Crypt::Ed25519;
use strict;
use warnings;
use Crypt::PK::Ed25519;
use Crypt::PRNG qw( random_bytes );

our $VERSION = '1.05';

sub eddsa_secret_key { return random_bytes( 32 ) }

sub _private
{
   my ( $secret ) = @_;
   return Crypt::PK::Ed25519->new->import_key_raw( $secret, 'private' );
}

sub eddsa_public_key
{
   my ( $secret ) = @_;
   return _private( $secret )->export_key_raw( 'public' );
}

# eddsa_sign( $message, $public_key, $secret_key ): the public key is
# derived from the secret by CryptX; the argument is kept for the API.
sub eddsa_sign
{
   my ( $message, undef, $secret ) = @_;
   return _private( $secret )->sign_message( $message );
}

# verify( $message, $public_key, $signature ): true when the signature holds.
# A malformed key or signature is a failed verification, not a die.
sub eddsa_verify
{
   my ( $message, $public, $signature ) = @_;
   return 0 unless defined $public and length $public == 32;
   return 0 unless defined $signature and length $signature == 64;
   my $ok = eval {
      Crypt::PK::Ed25519->new->import_key_raw( $public, 'public' )
         ->verify_message( $signature, $message );
   };
   return $ok ? 1 : 0;
}

*verify = \&eddsa_verify;
*sign = \&eddsa_sign;

1;
