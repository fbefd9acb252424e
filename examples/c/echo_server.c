/*
 * softbus_lite's second test, as a user writes it: publish a service, create
 * the session server "echo-server" and send back every message it receives.
 * Sessions come from soft bus devices (TCP) and, with SOFTBUS_WEB set, from
 * browsers over WebRTC data channels labelled "echo-server".
 *
 *   cc echo_server.c $(pkg-config --cflags --libs softbus) -o echo_server
 *   SOFTBUS_IP=192.168.1.20 SOFTBUS_PIN=246810 ./echo_server
 *
 * Stops (and removes the server, unpublishes) on SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "discovery_service.h"
#include "session.h"

static volatile sig_atomic_t g_stop = 0;

static void OnStop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void OnPublishSuccess(int publishId)
{
    (void)publishId;
}

static void OnPublishFail(int publishId, PublishFailReason reason)
{
    printf("publish %d failed: reason %d\n", publishId, (int)reason);
    fflush(stdout);
}

static int OnSessionOpened(int sessionId)
{
    char name[SESSION_NAME_SIZE_MAX];
    char peer[96];
    if (GetMySessionName(sessionId, name, sizeof(name)) != 0 ||
        GetPeerDeviceId(sessionId, peer, sizeof(peer)) != 0) {
        return -1;
    }
    printf("opened %d %s from %s\n", sessionId, name, peer);
    fflush(stdout);
    return 0;
}

static void OnSessionClosed(int sessionId)
{
    printf("closed %d\n", sessionId);
    fflush(stdout);
}

static void OnBytesReceived(int sessionId, const void *data, unsigned int dataLen)
{
    if (SendBytes(sessionId, data, dataLen) != 0) {
        printf("SendBytes %d failed\n", sessionId);
        fflush(stdout);
    }
}

int main(void)
{
    static IPublishCallback cb = {
        .onPublishSuccess = OnPublishSuccess,
        .onPublishFail = OnPublishFail,
    };
    static struct ISessionListener listener = {
        .onSessionOpened = OnSessionOpened,
        .onSessionClosed = OnSessionClosed,
        .onBytesReceived = OnBytesReceived,
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
    if (CreateSessionServer("softbus-server", "echo-server", &listener) != 0) {
        printf("CreateSessionServer failed\n");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (!g_stop) {
        pause();
    }
    RemoveSessionServer("softbus-server", "echo-server");
    return UnPublishService("softbus-server", 1) == 0 ? 0 : 1;
}
