/*
 * softbus_lite's first test, as a user writes it: publish a service so that
 * discoverers find this device (its device info and auth port), then wait.
 *
 *   cc publish.c $(pkg-config --cflags --libs softbus) -o publish
 *   SOFTBUS_IP=192.168.1.20 ./publish
 *
 * Stops (and unpublishes) on SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "discovery_service.h"

static volatile sig_atomic_t g_stop = 0;

static void OnStop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void OnPublishSuccess(int publishId)
{
    printf("published %d\n", publishId);
    fflush(stdout);
}

static void OnPublishFail(int publishId, PublishFailReason reason)
{
    printf("publish %d failed: reason %d\n", publishId, (int)reason);
    fflush(stdout);
}

int main(void)
{
    static IPublishCallback cb = {
        .onPublishSuccess = OnPublishSuccess,
        .onPublishFail = OnPublishFail,
    };
    PublishInfo info = {
        .publishId = 1,
        .mode = DISCOVER_MODE_PASSIVE,
        .medium = COAP,
        .freq = MID,
        .capability = "ddmpCapability",
        .capabilityData = (unsigned char *)"",
        .dataLen = 0,
    };
    signal(SIGINT, OnStop);
    signal(SIGTERM, OnStop);
    if (PublishService("softbus-server", &info, &cb) != 0) {
        return 1;
    }
    CommonDeviceInfo dev[] = {
        { COMM_DEVICE_KEY_DEVNAME, "c-publisher" },
        { COMM_DEVICE_KEY_DEVTYPE, "TV" },
    };
    if (SetCommonDeviceInfo(dev, 2) != 0) {
        printf("SetCommonDeviceInfo failed\n");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (!g_stop) {
        pause();
    }
    return UnPublishService("softbus-server", 1) == 0 ? 0 : 1;
}
