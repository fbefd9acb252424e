/*
 * softbus: the discovery return codes of softbus_lite's C API.
 * Written for the softbus project from the API's documented facts.
 */
#ifndef DISCOVERY_ERROR_H
#define DISCOVERY_ERROR_H

#define ERROR_SUCCESS 0
#define ERROR_FAIL (-1)
#define ERROR_INVALID (-2)
#define ERROR_NONEXIST (-3)
#define ERROR_NOMEMORY (-4)
#define ERROR_CAPABILITY_FAIL (-5)
#define ERROR_SERVICEDATA_FAIL (-6)
#define ERROR_CREATE_SOCKET (-7)
#define ERROR_CONNECT_SOCKET (-8)
#define ERROR_BIND_SOCKET (-9)
#define ERROR_GET_SOCKET (-10)
#define ERROR_CREATE_THREAD (-10)
#define ERROR_MEDIUM_NOT_SUPPORT (-11)

#endif /* DISCOVERY_ERROR_H */
