/*
 * softbus: softbus_lite's session API (session servers, SendBytes, session
 * names), implemented by the softbus node in this process. Sessions reach a
 * server over the soft bus (TCP) or over WebRTC data channels labelled with
 * its name. Written for the softbus project from the API's documented facts.
 */
#ifndef SESSION_H
#define SESSION_H

#ifdef __cplusplus
extern "C" {
#endif

/** Longest module and session name, including the terminating NUL. */
#define SESSION_NAME_SIZE_MAX 64
/** Largest SendBytes payload. */
#define SEND_BYTES_MAX 4048
/** At most this many session servers. */
#define MAX_SESSION_SERVER_NUM 8

/**
 * Session callbacks. They run on one library thread, one at a time, never
 * re-entered; they may call every function of this API.
 */
struct ISessionListener {
    /** A session opened; return 0 to keep it, non-zero to close it. */
    int (*onSessionOpened)(int sessionId);
    /** A session closed (no need to call CloseSession). */
    void (*onSessionClosed)(int sessionId);
    /** A message arrived; data is valid during the call only. */
    void (*onBytesReceived)(int sessionId, const void *data, unsigned int dataLen);
};

/** Creates a session server (after PublishService). 0 or -1. */
int CreateSessionServer(const char *mouduleName, const char *sessionName, struct ISessionListener *listener);

/** Removes a session server and closes its sessions. 0 or -1. */
int RemoveSessionServer(const char *mouduleName, const char *sessionName);

/** Sends 1..SEND_BYTES_MAX bytes on a session. 0 or -1. */
int SendBytes(int sessionId, const void *data, unsigned int len);

/** The session's server name, NUL-terminated into sessionName[len]. 0 or -1. */
int GetMySessionName(int sessionId, char *sessionName, unsigned int len);

/** The peer's session name: the same name, as in softbus_lite. 0 or -1. */
int GetPeerSessionName(int sessionId, char *sessionName, unsigned int len);

/** The peer's device id (or, over WebRTC, the web token's name). 0 or -1. */
int GetPeerDeviceId(int sessionId, char *devId, unsigned int len);

/** Closes a session; onSessionClosed follows. */
void CloseSession(int sessionId);

#ifdef __cplusplus
}
#endif

#endif /* SESSION_H */
