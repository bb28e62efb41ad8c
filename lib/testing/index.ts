/** `nestjs-master-election/testing`: the embedded Doozer server and test helpers. */
export {};
