/*
 * softbus: softbus_lite's discovery API (PublishService, UnPublishService,
 * SetCommonDeviceInfo), implemented by the softbus node in this process.
 * Written for the softbus project from the API's documented facts; the
 * names, types, layouts and return codes are softbus_lite's.
 */
#ifndef DISCOVERY_SERVICE_H
#define DISCOVERY_SERVICE_H

#include "discovery_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest module name, including the terminating NUL. */
#define MAX_MODULE_NAME_LEN 64
/** Capability data is at most two bytes. */
#define MAX_CAPABILITY_DATA_LEN 2
/** At most three services are published at once. */
#define MAX_MODULE_COUNT 3

/** Publishing modes (ignored, as by softbus_lite). */
#define DISCOVER_MODE_PASSIVE 0x55
#define DISCOVER_MODE_ACTIVE 0xAA

typedef enum {
    AUTO = 0,
    BLE = 1,
    COAP = 2,
    USB = 3,
} ExchangeMedium;

typedef enum {
    LOW = 0,
    MID = 1,
    HIGH = 2,
    SUPER_HIGH = 3,
} ExchangeFreq;

typedef struct PublishInfo {
    /** Positive publishing id. */
    int publishId;
    /** DISCOVER_MODE_PASSIVE or DISCOVER_MODE_ACTIVE (ignored). */
    int mode;
    /** Only COAP is supported. */
    ExchangeMedium medium;
    /** Ignored. */
    ExchangeFreq freq;
    /** One of: hicall, profile, homevisionPic, castPlus, aaCapability, dvKit, ddmpCapability. */
    const char *capability;
    /** Capability data, at most MAX_CAPABILITY_DATA_LEN bytes. */
    unsigned char *capabilityData;
    unsigned int dataLen;
} PublishInfo;

typedef enum {
    PUBLISH_FAIL_REASON_NOT_SUPPORT_MEDIUM = 1,
    PUBLISH_FAIL_REASON_PARAMETER_INVALID = 2,
    PUBLISH_FAIL_REASON_UNKNOWN = 0xFF,
} PublishFailReason;

typedef struct IPublishCallback {
    void (*onPublishSuccess)(int publishId);
    void (*onPublishFail)(int publishId, PublishFailReason reason);
} IPublishCallback;

typedef enum {
    /** Device id, fewer than 96 bytes. */
    COMM_DEVICE_KEY_DEVID = 0,
    /** Device type: PHONE, PAD, TV, PC, AUDIO, CAR, L0 or L1. */
    COMM_DEVICE_KEY_DEVTYPE = 1,
    /** Device name, fewer than 64 bytes. */
    COMM_DEVICE_KEY_DEVNAME = 2,
    COMM_DEVICE_KEY_MAX,
} CommonDeviceKey;

typedef struct CommonDeviceInfo {
    CommonDeviceKey key;
    const char *value;
} CommonDeviceInfo;

/**
 * Publishes a service. The first successful call starts the softbus node in
 * this process (configured by the SOFTBUS_* environment variables).
 * onPublishSuccess or onPublishFail runs before the call returns.
 * Returns 0, ERROR_INVALID or ERROR_FAIL.
 */
int PublishService(const char *moduleName, const struct PublishInfo *info, const struct IPublishCallback *cb);

/** Removes a published service; the node stops with the last one. 0, ERROR_INVALID or ERROR_NONEXIST. */
int UnPublishService(const char *moduleName, int publishId);

/** Sets 1..3 device fields after the first PublishService, all or nothing. 0 or ERROR_FAIL. */
int SetCommonDeviceInfo(const struct CommonDeviceInfo *devInfo, unsigned int num);

#ifdef __cplusplus
}
#endif

#endif /* DISCOVERY_SERVICE_H */
