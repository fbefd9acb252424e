/* Prints the layout of every struct the headers declare, as JSON, and takes
 * the address of every function they declare (so linking fails if one does
 * not resolve in libsoftbus). */
#include <stddef.h>
#include <stdio.h>

#include "discovery_service.h"
#include "session.h"

static void *const g_functions[] = {
    (void *)PublishService, (void *)UnPublishService, (void *)SetCommonDeviceInfo,
    (void *)CreateSessionServer, (void *)RemoveSessionServer, (void *)SendBytes,
    (void *)GetMySessionName, (void *)GetPeerSessionName, (void *)GetPeerDeviceId,
    (void *)CloseSession,
};

int main(void)
{
    printf("{\"functions\":%zu,", sizeof(g_functions) / sizeof(g_functions[0]));
    printf("\"PublishInfo\":[%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu],", sizeof(PublishInfo),
        offsetof(PublishInfo, publishId), offsetof(PublishInfo, mode), offsetof(PublishInfo, medium),
        offsetof(PublishInfo, freq), offsetof(PublishInfo, capability),
        offsetof(PublishInfo, capabilityData), offsetof(PublishInfo, dataLen));
    printf("\"IPublishCallback\":[%zu,%zu,%zu],", sizeof(IPublishCallback),
        offsetof(IPublishCallback, onPublishSuccess), offsetof(IPublishCallback, onPublishFail));
    printf("\"CommonDeviceInfo\":[%zu,%zu,%zu],", sizeof(CommonDeviceInfo),
        offsetof(CommonDeviceInfo, key), offsetof(CommonDeviceInfo, value));
    printf("\"ISessionListener\":[%zu,%zu,%zu,%zu],", sizeof(struct ISessionListener),
        offsetof(struct ISessionListener, onSessionOpened), offsetof(struct ISessionListener, onSessionClosed),
        offsetof(struct ISessionListener, onBytesReceived));
    printf("\"enum\":%zu,\"COAP\":%d,\"UNKNOWN\":%d,\"DEVNAME\":%d,\"ERROR_NONEXIST\":%d,\"SEND_BYTES_MAX\":%d}\n",
        sizeof(ExchangeMedium), (int)COAP, (int)PUBLISH_FAIL_REASON_UNKNOWN, (int)COMM_DEVICE_KEY_DEVNAME,
        ERROR_NONEXIST, SEND_BYTES_MAX);
    return 0;
}
