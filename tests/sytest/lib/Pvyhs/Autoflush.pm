# Loaded with -M by run.sh: SyTest's TAP output writes the results to STDOUT
# and each file's name to STDERR; unbuffered, the two interleave in order in
# one log, so the summary knows which file each test came from.
package Pvyhs::Autoflush;
use IO::Handle;
STDOUT->autoflush( 1 );
STDERR->autoflush( 1 );
1;
