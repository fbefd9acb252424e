/* Calls every function with what a careless program passes: NULL, names too
 * long, lengths of zero and over the limit, unknown session ids, calls before
 * PublishService and from inside callbacks. Each must return its documented
 * code; nothing may crash or leak (built with -fsanitize=address). Prints one
 * line per failed expectation and "ok N" at the end. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "discovery_service.h"
#include "session.h"

static int g_failed = 0;
static int g_checks = 0;
static volatile sig_atomic_t g_stop = 0;
static volatile int g_opened = 0;
static volatile int g_received = 0;
static volatile int g_closed = 0;
static int g_success = 0;
static int g_fail_reason = 0;

#define EXPECT(call, want)                                                            \
    do {                                                                              \
        int got_ = (call);                                                            \
        g_checks++;                                                                   \
        if (got_ != (want)) {                                                         \
            printf("FAIL line %d: %s = %d, want %d\n", __LINE__, #call, got_, (want)); \
            g_failed++;                                                               \
        }                                                                             \
    } while (0)

static void OnStop(int sig) { (void)sig; g_stop = 1; }
static void OnPublishSuccess(int id) { g_success = id; }
static void OnPublishFail(int id, PublishFailReason reason) { (void)id; g_fail_reason = (int)reason; }

static char g_long[200];

static int OnSessionOpened(int id)
{
    char small[4];
    char name[SESSION_NAME_SIZE_MAX];
    /* Calls from inside a callback. */
    EXPECT(GetMySessionName(id, small, sizeof(small)), -1);
    EXPECT(GetMySessionName(id, NULL, 64), -1);
    EXPECT(GetMySessionName(id, name, sizeof(name)), 0);
    EXPECT(strcmp(name, "misuse"), 0);
    EXPECT(GetPeerSessionName(id, name, sizeof(name)), 0);
    EXPECT(strcmp(name, "misuse"), 0);
    EXPECT(GetPeerDeviceId(id, name, 0), -1);
    g_opened++;
    return 0;
}

static void OnBytesReceived(int id, const void *data, unsigned int len)
{
    static unsigned char big[SEND_BYTES_MAX + 1];
    g_received++;
    if (g_received > 1) {
        /* The client's second message, sent once the echo came back: it
         * waits for `big` and closes, so only the close is ours to do. */
        CloseSession(id);
        return;
    }
    EXPECT(SendBytes(id, data, 0), -1);
    EXPECT(SendBytes(id, NULL, len), -1);
    EXPECT(SendBytes(id, big, SEND_BYTES_MAX + 1), -1);
    EXPECT(SendBytes(id, data, len), 0);
    EXPECT(SendBytes(id, big, SEND_BYTES_MAX), 0);
    EXPECT(SendBytes(id + 1000, data, len), -1);
}

static void OnSessionClosed(int id) { (void)id; g_closed++; }

int main(void)
{
    IPublishCallback cb = { OnPublishSuccess, OnPublishFail };
    struct ISessionListener listener = { OnSessionOpened, OnSessionClosed, OnBytesReceived };
    PublishInfo info = { 1, DISCOVER_MODE_PASSIVE, COAP, MID, "ddmpCapability", NULL, 0 };
    CommonDeviceInfo dev = { COMM_DEVICE_KEY_DEVNAME, "misuse" };
    unsigned char buf[8] = {0};
    char out[64];

    memset(g_long, 'x', sizeof(g_long) - 1);
    signal(SIGTERM, OnStop);

    /* Before anything is published. */
    EXPECT(SetCommonDeviceInfo(&dev, 1), ERROR_FAIL);
    EXPECT(UnPublishService("m", 1), ERROR_INVALID);
    EXPECT(CreateSessionServer("m", "misuse", &listener), -1);
    EXPECT(SendBytes(1, buf, 1), -1);
    EXPECT(GetMySessionName(1, out, sizeof(out)), -1);
    CloseSession(1);

    /* PublishService: NULLs, long names, bad ids, media, capabilities, data. */
    EXPECT(PublishService("m", NULL, &cb), ERROR_INVALID);
    EXPECT(PublishService("m", &info, NULL), ERROR_INVALID);
    EXPECT(PublishService(NULL, &info, &cb), ERROR_INVALID);
    EXPECT(g_fail_reason, PUBLISH_FAIL_REASON_PARAMETER_INVALID);
    EXPECT(PublishService(g_long, &info, &cb), ERROR_INVALID);
    info.publishId = 0;
    EXPECT(PublishService("m", &info, &cb), ERROR_INVALID);
    info.publishId = 1;
    info.medium = BLE;
    g_fail_reason = 0;
    EXPECT(PublishService("m", &info, &cb), ERROR_INVALID);
    EXPECT(g_fail_reason, PUBLISH_FAIL_REASON_NOT_SUPPORT_MEDIUM);
    info.medium = COAP;
    info.capability = "noSuchCapability";
    EXPECT(PublishService("m", &info, &cb), ERROR_FAIL);
    EXPECT(g_fail_reason, PUBLISH_FAIL_REASON_UNKNOWN);
    info.capability = NULL;
    EXPECT(PublishService("m", &info, &cb), ERROR_FAIL);
    info.capability = "ddmpCapability";
    info.capabilityData = buf;
    info.dataLen = 3;
    EXPECT(PublishService("m", &info, &cb), ERROR_INVALID);
    info.dataLen = 0xFFFFFFFFu; /* a careless length: refused, never allocated */
    EXPECT(PublishService("m", &info, &cb), ERROR_INVALID);
    info.dataLen = 2;

    /* Now for real; a second time with the same id is refused. */
    EXPECT(PublishService("m", &info, &cb), 0);
    EXPECT(g_success, 1);
    EXPECT(PublishService("m", &info, &cb), ERROR_FAIL);

    /* SetCommonDeviceInfo: NULL, counts, keys, values. */
    EXPECT(SetCommonDeviceInfo(NULL, 1), ERROR_FAIL);
    EXPECT(SetCommonDeviceInfo(&dev, 0), ERROR_FAIL);
    EXPECT(SetCommonDeviceInfo(&dev, 4), ERROR_FAIL);
    CommonDeviceInfo bad_type = { COMM_DEVICE_KEY_DEVTYPE, "TOASTER" };
    EXPECT(SetCommonDeviceInfo(&bad_type, 1), ERROR_FAIL);
    CommonDeviceInfo bad_key = { (CommonDeviceKey)7, "x" };
    EXPECT(SetCommonDeviceInfo(&bad_key, 1), ERROR_FAIL);
    CommonDeviceInfo null_value = { COMM_DEVICE_KEY_DEVNAME, NULL };
    EXPECT(SetCommonDeviceInfo(&null_value, 1), ERROR_FAIL);
    CommonDeviceInfo long_name = { COMM_DEVICE_KEY_DEVNAME, g_long };
    EXPECT(SetCommonDeviceInfo(&long_name, 1), ERROR_FAIL);
    EXPECT(SetCommonDeviceInfo(&dev, 1), 0);

    /* Session servers: NULLs, long names, duplicates. */
    EXPECT(CreateSessionServer(NULL, "misuse", &listener), -1);
    EXPECT(CreateSessionServer("m", NULL, &listener), -1);
    EXPECT(CreateSessionServer("m", "misuse", NULL), -1);
    EXPECT(CreateSessionServer("m", g_long, &listener), -1);
    EXPECT(CreateSessionServer(g_long, "misuse", &listener), -1);
    EXPECT(CreateSessionServer("m", "misuse", &listener), 0);
    EXPECT(CreateSessionServer("m", "misuse", &listener), -1);
    EXPECT(RemoveSessionServer("m", "nope"), -1);
    EXPECT(RemoveSessionServer(NULL, NULL), -1);

    /* Unknown sessions. */
    EXPECT(SendBytes(777, buf, 1), -1);
    EXPECT(GetMySessionName(777, out, sizeof(out)), -1);
    EXPECT(GetPeerSessionName(-1, out, sizeof(out)), -1);
    EXPECT(GetPeerDeviceId(777, out, sizeof(out)), -1);
    CloseSession(777);

    EXPECT(UnPublishService(NULL, 1), ERROR_INVALID);
    EXPECT(UnPublishService("m", 0), ERROR_INVALID);
    EXPECT(UnPublishService("m", 9), ERROR_NONEXIST);

    printf("ready\n");
    fflush(stdout);
    /* The test opens a session and sends one message, then SIGTERM. */
    for (int i = 0; i < 300 && !g_stop; i++) {
        usleep(100000);
    }
    EXPECT(g_opened, 1);
    EXPECT(g_received >= 1, 1);
    EXPECT(g_closed, 1);
    EXPECT(RemoveSessionServer("m", "misuse"), 0);
    EXPECT(UnPublishService("m", 1), 0);
    /* Stopped: back to "nothing published". */
    EXPECT(UnPublishService("m", 1), ERROR_INVALID);
    EXPECT(SendBytes(1, buf, 1), -1);
    printf("%s %d\n", g_failed ? "failed" : "ok", g_checks);
    return g_failed ? 1 : 0;
}
