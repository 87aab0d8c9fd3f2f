// The service's version, reported by GET /v2 (server metadata of the Open Inference Protocol); kept equal to
// the version in package.json.
export const SERVICE_VERSION = '0.1.0';
