# SyTest's homeserver factory for pvyhs: `run-tests.pl -I Pvyhs`, with this
# folder's parent (tests/sytest/lib) on perl's @INC. SyTest finds factories
# with Module::Pluggable under SyTest::HomeserverFactory, so nothing in the
# SyTest checkout changes. See tests/sytest/run.sh.
use strict;
use warnings;

require SyTest::Homeserver::Pvyhs;

package SyTest::HomeserverFactory::Pvyhs;
use base qw( SyTest::HomeserverFactory );

sub _init
{
   my $self = shift;
   $self->{args} = {
      bindir => $ENV{PVYHS_BINDIR} // "../pvyhs/build/bin",
   };
   $self->SUPER::_init( @_ );
}

sub implementation_name
{
   return "pvyhs";
}

sub get_options
{
   my $self = shift;
   return (
      'pvyhs-binary-directory=s' => \$self->{args}{bindir},
      $self->SUPER::get_options(),
   );
}

sub print_usage
{
   print STDERR "   --pvyhs-binary-directory DIR  - the folder holding the pvyhs binary\n" .
                "                                   (default \$PVYHS_BINDIR)\n";
}

sub create_server
{
   my $self = shift;
   my %params = ( @_, %{ $self->{args} } );
   return SyTest::Homeserver::Pvyhs->new( %params );
}

1;
