/** `nestjs-master-election`: the Nest module and the election engine. */
export {};
