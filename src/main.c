/* warrend: parse the command line and hand over to the main process. */
#include "core/process.h"
#include "daemon/daemon.h"

int main(int argc, char **argv)
{
    wr_options_t opt;
    int rc;

    wr_title_init(argc, argv);          /* first: it copies argv for the parser */
    rc = wr_options_parse(&opt, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 1;
    return wr_daemon_run(&opt);
}
