/*
 * A new network namespace starts with one interface, lo, and it is down:
 * the application could not even reach itself on 127.0.0.1 (a local cache,
 * a worker pool talking to its own listener). The prototype, still holding
 * CAP_NET_ADMIN over its namespace, brings lo up; nothing else is set up,
 * so the namespace stays cut off from every other network.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "sandbox/sandbox.h"

#define WR_SB_LOOPBACK "lo"

int wr_sb_loopback_up(wr_sb_err_t *err)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return wr_sb_fail(err, "socket", "AF_INET, for " WR_SB_LOOPBACK);
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, WR_SB_LOOPBACK, sizeof(WR_SB_LOOPBACK));
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
        wr_sb_fail(err, "ioctl", WR_SB_LOOPBACK ", SIOCGIFFLAGS");
        goto fail;
    }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
        wr_sb_fail(err, "ioctl", WR_SB_LOOPBACK ", SIOCSIFFLAGS IFF_UP");
        goto fail;
    }
    close(fd);
    return 0;
fail:
    close(fd);
    return -1;
}
